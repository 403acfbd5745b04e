package queries

import (
	"strings"
	"testing"
)

func TestEveryOperationIsWhole(t *testing.T) {
	for name, doc := range map[string]string{"Dashboard": Dashboard, "VolumesPage": VolumesPage, "InvoiceItems": InvoiceItems, "BillingPage": BillingPage,
		"PeersVolumes": PeersVolumes, "PeersInvoices": PeersInvoices, "PeersDashboard": PeersDashboard} {
		if !strings.HasPrefix(doc, "query "+name+" {") && !strings.HasPrefix(doc, "query "+name+"(") || !strings.HasSuffix(doc, "\n}") || strings.Count(doc, "{") != strings.Count(doc, "}") || strings.Count(doc, "query ") != 1 {
			t.Errorf("%s is cut wrongly:\n%s", name, doc)
		}
	}
}
