package upstream

import "context"

const balancePath = "/v2/customers/my/balance"

// EndpointBalance labels the call in metrics and errors (each endpoint's label sits beside its path).
const EndpointBalance = "GET " + balancePath

// Balance is GET /v2/customers/my/balance: money as exact decimal strings.
type Balance struct {
	MonthToDateBalance string `json:"month_to_date_balance,omitempty"`
	AccountBalance     string `json:"account_balance,omitempty"`
	MonthToDateUsage   string `json:"month_to_date_usage,omitempty"`
	GeneratedAt        string `json:"generated_at,omitempty"`
}

// GetBalance fetches the account's balance.
func (c *Client) GetBalance(ctx context.Context) (*Balance, error) {
	var b Balance
	if err := c.getJSON(ctx, EndpointBalance, balancePath, nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
