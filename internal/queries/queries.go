// Package queries holds the canonical GraphQL operations (canonical.graphql)
// in one file, so that the tests of graph, the server and telemetry, and the
// benchmark send the same documents and the copies cannot drift.
package queries

import (
	_ "embed"
	"strings"
)

//go:embed canonical.graphql
var file string

// The canonical operations, each a document of its own.
var (
	Dashboard    = operation("Dashboard")
	VolumesPage  = operation("VolumesPage")
	InvoiceItems = operation("InvoiceItems") // variable $uuid: the invoice
	BillingPage  = operation("BillingPage")
	// The peers' three queries (issue 12), beside the floor in bench/.
	PeersVolumes   = operation("PeersVolumes")
	PeersInvoices  = operation("PeersInvoices")
	PeersDashboard = operation("PeersDashboard") // variables $a, $b, $c: three invoices
)

// DashboardCalls is the upstream calls the dashboard needs, one per distinct
// resource: the invoices page (with the preview), 12 summaries, 12 item
// pages, the volumes page and the billing-history page.
const DashboardCalls = 1 + 12 + 12 + 1 + 1

// operation cuts the named operation out of the file: from its `query` line
// to the next blank line. A missing one panics at init, in every test.
func operation(name string) string {
	_, rest, ok := strings.Cut(file, "\nquery "+name)
	if !ok {
		panic("queries: no operation " + name + " in canonical.graphql")
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return "query " + name + strings.TrimRight(body, "\n")
}
