package upstream

import "context"

// BillingHistoryEntry is one event of the account's billing history. Every
// field may be missing; amounts are exact decimal strings and may be negative.
type BillingHistoryEntry struct {
	Description string `json:"description,omitempty"`
	Amount      string `json:"amount,omitempty"`
	InvoiceID   string `json:"invoice_id,omitempty"`
	InvoiceUUID string `json:"invoice_uuid,omitempty"`
	Date        string `json:"date,omitempty"`
	// Type is one of ACHFailure, Adjustment, AttemptFailed, Chargeback, Credit,
	// CreditExpiration, Invoice, Payment, Refund, Reversal, or a newer one.
	Type string `json:"type,omitempty"`
}

const billingHistoryPath = "/v2/customers/my/billing_history"

// EndpointBillingHistory labels the call in metrics and errors.
const EndpointBillingHistory = "GET " + billingHistoryPath

// BillingHistoryPage is one page of GET /v2/customers/my/billing_history.
type BillingHistoryPage struct {
	BillingHistory []BillingHistoryEntry `json:"billing_history"`
	Links          *Links                `json:"links,omitempty"`
	Meta           Meta                  `json:"meta"`
}

// ListBillingHistory fetches one page of the billing history. The spec
// declares no paging parameters here, yet the API pages (see REFERENCE Q1).
func (c *Client) ListBillingHistory(ctx context.Context, opt ListOptions) (*BillingHistoryPage, error) {
	var page BillingHistoryPage
	if err := c.getJSON(ctx, EndpointBillingHistory, billingHistoryPath, opt.values(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}
