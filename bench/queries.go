package main

import (
	"encoding/json"
	"fmt"
	"time"
)

// query is one canonical GraphQL request the benchmark drives.
type query struct {
	Name string
	// Text is the GraphQL document; %s, when present, takes an invoice uuid.
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
		Text: `query Dashboard {
  invoices(first: 12) {
    totalCount
    preview { uuid amount period updatedAt }
    nodes {
      uuid invoiceId period amount
      summary { amount }
      items(first: 5) { totalCount nodes { product description amount } }
    }
  }
  volumes(first: 50) { totalCount nodes { id name sizeGigabytes region { slug } dropletIds tags } }
  billingHistory(first: 10) { nodes { type description amount date invoiceUuid } }
}`,
		Floor: func(latency time.Duration, concurrency int) (time.Duration, string) {
			waves := ceilDiv(dashboardLists, concurrency) + ceilDiv(2*dashboardInvoices, concurrency)
			return time.Duration(waves) * latency, fmt.Sprintf("%d round(s) for the %d lists + %d wave(s) of the %d per-invoice calls at MAX_CONCURRENCY=%d",
				ceilDiv(dashboardLists, concurrency), dashboardLists, ceilDiv(2*dashboardInvoices, concurrency), 2*dashboardInvoices, concurrency)
		},
	}
	volumesPage = query{
		Name: "volumes(first:20)",
		Text: `query VolumesPage {
  volumes(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id name description sizeGigabytes createdAt region { slug name } dropletIds tags filesystemType }
  }
}`,
		Floor: oneCall,
	}
	invoiceItems = query{
		Name: "invoice+all items",
		Text: `query InvoiceItems {
  invoice(uuid: %q) {
    uuid invoiceId period amount
    items(first: 200) {
      totalCount
      nodes { product description groupDescription amount duration durationUnit startTime endTime projectName category }
    }
  }
}`,
		// The summary (amount, period) and the items page are independent.
		Floor: oneCall,
	}
	billingPage = query{
		Name: "billingHistory(first:20)",
		Text: `query BillingPage {
  billingHistory(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { type description amount date invoiceId invoiceUuid }
  }
}`,
		Floor: oneCall,
	}
	canonical = []query{dashboard, volumesPage, invoiceItems, billingPage}
)

func oneCall(latency time.Duration, _ int) (time.Duration, string) {
	return latency, "one round of upstream calls"
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// body renders the JSON request body, filling in the invoice uuid if needed.
func (q query) body(invoiceUUID string) []byte {
	text := q.Text
	if q.Name == invoiceItems.Name {
		text = fmt.Sprintf(q.Text, invoiceUUID)
	}
	b, _ := json.Marshal(map[string]string{"query": text})
	return b
}
