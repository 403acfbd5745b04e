package upstream

import (
	"context"
	"net/http"
	"testing"
)

func TestGetBalanceDecodesSpecExample(t *testing.T) {
	do := newFakeDO(t)
	do.mux.Handle("GET /v2/customers/my/balance", serveJSON(http.StatusOK, fixture(t, "balance.json")))
	c := newTestClient(t, do.URL, Config{})

	b, err := c.GetBalance(context.Background())
	if err != nil {
		t.Fatalf("GetBalance: %v", err)
	}
	assertEqual(t, "balance", b, &Balance{
		MonthToDateBalance: "23.44",
		AccountBalance:     "12.23",
		MonthToDateUsage:   "11.21",
		GeneratedAt:        "2019-07-09T15:01:12Z",
	})
}
