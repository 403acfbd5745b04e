package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBodyBudgetBoundsTheJSONOneContextReads(t *testing.T) {
	body := `{"month_to_date_balance":"` + strings.Repeat("1", 1000) + `"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Config{MaxRetries: -1})
	ctx := WithBodyBudget(context.Background(), NewBodyBudget(int64(len(body))*2))
	for i := range 2 {
		if _, err := c.GetBalance(ctx); err != nil {
			t.Fatalf("call %d within the budget: %v", i+1, err)
		}
	}
	_, err := c.GetBalance(ctx)
	var ue *Error
	if !errors.Is(err, ErrBodyBudgetExceeded) || !errors.As(err, &ue) || ue.Endpoint != EndpointBalance {
		t.Errorf("third body past the budget: %v, want an *Error wrapping ErrBodyBudgetExceeded", err)
	}
	if _, err := c.GetBalance(context.Background()); err != nil {
		t.Errorf("another context has its own budget (none): %v", err)
	}
}
