package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oceangraph/oceangraph/internal/queries"
)

// query is one canonical GraphQL request the benchmark drives.
type query struct {
	Name string
	// Text is the GraphQL document (internal/queries); $uuid, when declared, takes an invoice uuid.
	Text string
	// Floor returns the least latency the query can have when every upstream
	// call takes latency and at most concurrency run at once, and explains it.
	Floor func(latency time.Duration, concurrency int) (time.Duration, string)
}

// The dashboard's shape: three independent lists, then per invoice its summary
// and its first items page. Its distinct upstream resources: 3 lists + 12 + 12.
const (
	dashboardInvoices = 12
	dashboardLists    = 3
	// DashboardMinCalls is the distinct-resource minimum the server must reach.
	dashboardMinCalls = dashboardLists + 2*dashboardInvoices
)

var (
	dashboard = query{
		Name: "dashboard",
		Text: queries.Dashboard,
		Floor: func(latency time.Duration, concurrency int) (time.Duration, string) {
			waves := ceilDiv(dashboardLists, concurrency) + ceilDiv(2*dashboardInvoices, concurrency)
			return time.Duration(waves) * latency, fmt.Sprintf("%d round(s) for the %d lists + %d wave(s) of the %d per-invoice calls at MAX_CONCURRENCY=%d",
				ceilDiv(dashboardLists, concurrency), dashboardLists, ceilDiv(2*dashboardInvoices, concurrency), 2*dashboardInvoices, concurrency)
		},
	}
	volumesPage = query{
		Name:  "volumes(first:20)",
		Text:  queries.VolumesPage,
		Floor: oneCall,
	}
	invoiceItems = query{
		Name: "invoice+all items",
		Text: queries.InvoiceItems,
		// The summary (amount, period) and the items page are independent.
		Floor: oneCall,
	}
	billingPage = query{
		Name:  "billingHistory(first:20)",
		Text:  queries.BillingPage,
		Floor: oneCall,
	}
	canonical = []query{dashboard, volumesPage, invoiceItems, billingPage}
)

func oneCall(latency time.Duration, _ int) (time.Duration, string) {
	return latency, "one round of upstream calls"
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// body renders the JSON request body, with the invoice uuid as $uuid if the query declares it.
func (q query) body(invoiceUUID string) []byte {
	req := map[string]any{"query": q.Text}
	if strings.Contains(q.Text, "$uuid") {
		req["variables"] = map[string]string{"uuid": invoiceUUID}
	}
	b, _ := json.Marshal(req)
	return b
}
