package sandbox

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// csvHeader is DigitalOcean's invoice CSV header, column for column.
var csvHeader = []string{"product", "group_description", "description", "hours", "start", "end", "USD", "project_name", "category"}

// csvTime is the CSV's date format: 2020-07-01 00:00:00 +0000.
const csvTime = "2006-01-02 15:04:05 -0700"

// fileName is DigitalOcean's download name, e.g.
// "DigitalOcean Invoice 2020 Jul (6173678-418071234).csv".
func fileName(a *Account, inv *Invoice, ext string) string {
	return fmt.Sprintf("DigitalOcean Invoice %s (%s-%s).%s", inv.Start.Format("2006 Jan"), a.CustomerID, inv.Number, ext)
}

// CSV renders an invoice as DigitalOcean's CSV download.
func (inv *Invoice) CSV() []byte {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write(csvHeader)
	for _, it := range inv.Items {
		amount, _ := parseCents(it.Amount)
		cw.Write([]string{
			it.Product, it.GroupDescription, it.Description, it.Duration,
			csvDate(it.StartTime), csvDate(it.EndTime), amount.dollars(), it.ProjectName, it.Category,
		})
	}
	cw.Flush()
	return buf.Bytes()
}

func csvDate(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return ""
	}
	return t.UTC().Format(csvTime)
}

func (s *Sandbox) invoiceCSV(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invoice(w, r)
	if !ok {
		return
	}
	body := inv.CSV()
	h := w.Header()
	h.Set("Content-Type", "text/csv")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fileName(s.account(r), inv, "csv")))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
