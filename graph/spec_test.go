package graph

import (
	"testing"
)

// DigitalOcean's own example bodies (testdata/spec, taken from its OpenAPI
// spec; the second volume is reduced the way godo's fixtures send it: a region
// with only a slug, null droplet_ids and tags, empty filesystem strings)
// become exactly this JSON.
func TestSpecExampleBodies(t *testing.T) {
	stub := newStub().
		onFile(t, "/v2/customers/my/billing_history", "billing_history.json").
		onFile(t, "/v2/customers/my/invoices", "invoices.json").
		onFile(t, "/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681", "invoice_items.json").
		onFile(t, "/v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681/summary", "invoice_summary.json").
		onFile(t, "/v2/customers/my/balance", "balance.json").
		onFile(t, "/v2/volumes", "volumes.json").
		onFile(t, "/v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1", "volume.json")
	h := newHarness(t, stub)

	cases := []struct {
		name, query, want string
		calls             []string
	}{{
		name: "billing history",
		query: `{ billingHistory(first: 2) { totalCount pageInfo { hasNextPage hasPreviousPage }
			nodes { type description amount date invoiceId invoiceUuid invoice { uuid invoiceId } } } }`,
		want: `{"billingHistory":{"totalCount":5,"pageInfo":{"hasNextPage":true,"hasPreviousPage":false},"nodes":[
			{"type":"INVOICE","description":"Invoice for May 2018","amount":"12.34","date":"2018-06-01T08:44:38Z","invoiceId":"123","invoiceUuid":"example-uuid","invoice":{"uuid":"example-uuid","invoiceId":"123"}},
			{"type":"PAYMENT","description":"Payment (MC 2018)","amount":"-12.34","date":"2018-06-02T08:44:38Z","invoiceId":null,"invoiceUuid":null,"invoice":null}]}}`,
		calls: []string{"GET /v2/customers/my/billing_history?page=1&per_page=2"},
	}, {
		name: "invoices with preview",
		query: `{ invoices(first: 2) { totalCount pageInfo { hasNextPage }
			preview { uuid invoiceId period amount updatedAt isPreview }
			nodes { uuid invoiceId period amount updatedAt isPreview } } }`,
		want: `{"invoices":{"totalCount":70,"pageInfo":{"hasNextPage":true},
			"preview":{"uuid":"1afe95e6-0958-4eb0-8d9a-9c5060d3ef03","invoiceId":"34567890","period":"2020-02","amount":"34.56","updatedAt":"2020-02-23T06:31:50Z","isPreview":true},
			"nodes":[{"uuid":"22737513-0ea7-4206-8ceb-98a575af7681","invoiceId":"12345678","period":"2019-12","amount":"12.34","updatedAt":null,"isPreview":false},
			{"uuid":"fdabb512-6faf-443c-ba2e-665452332a9e","invoiceId":"23456789","period":"2019-11","amount":"23.45","updatedAt":null,"isPreview":false}]}}`,
		calls: []string{"GET /v2/customers/my/invoices?page=1&per_page=2"},
	}, {
		name: "invoice items and summary",
		query: `{ invoice(uuid: "22737513-0ea7-4206-8ceb-98a575af7681") {
			uuid invoiceId period amount
			items(first: 2) { totalCount nodes { product description groupDescription amount duration durationUnit startTime endTime projectName category resourceId resourceUuid } }
			summary { invoiceUuid invoiceId billingPeriod amount userName userCompany userEmail
				userBillingAddress { addressLine1 addressLine2 city region postalCode countryIso2Code createdAt updatedAt }
				productCharges { name amount items { name amount count } }
				overages { name amount } taxes { name amount } creditsAndAdjustments { name amount } } } }`,
		want: `{"invoice":{"uuid":"22737513-0ea7-4206-8ceb-98a575af7681","invoiceId":"123456789","period":"2020-01","amount":"27.13",
			"items":{"totalCount":6,"nodes":[
				{"product":"Kubernetes Clusters","description":"a56e086a317d8410c8b4cfd1f4dc9f82","groupDescription":"my-doks-cluster","amount":"12.34","duration":744,"durationUnit":"Hours","startTime":"2020-01-01T00:00:00Z","endTime":"2020-02-01T00:00:00Z","projectName":null,"category":null,"resourceId":null,"resourceUuid":"711157cb-37c8-4817-b371-44fa3504a39c"},
				{"product":"Spaces Subscription","description":"Spaces ($5/mo 250GB storage & 1TB bandwidth)","groupDescription":null,"amount":"34.45","duration":744,"durationUnit":"Hours","startTime":"2020-01-01T00:00:00Z","endTime":"2020-02-01T00:00:00Z","projectName":null,"category":null,"resourceId":null,"resourceUuid":null}]},
			"summary":{"invoiceUuid":"22737513-0ea7-4206-8ceb-98a575af7681","invoiceId":"123456789","billingPeriod":"2020-01","amount":"27.13","userName":"Sammy Shark","userCompany":"DigitalOcean","userEmail":"sammy@digitalocean.com",
				"userBillingAddress":{"addressLine1":"101 Shark Row","addressLine2":null,"city":"Atlantis","region":"OC","postalCode":"12345","countryIso2Code":"US","createdAt":"2019-09-03T16:34:46Z","updatedAt":"2019-09-03T16:34:46Z"},
				"productCharges":{"name":"Product usage charges","amount":"12.34","items":[{"name":"Spaces Subscription","amount":"10.00","count":1},{"name":"Database Clusters","amount":"2.34","count":1}]},
				"overages":{"name":"Overages","amount":"3.45"},"taxes":{"name":"Taxes","amount":"4.56"},"creditsAndAdjustments":{"name":"Credits & adjustments","amount":"6.78"}}}}`,
		calls: []string{
			"GET /v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681/summary",
			"GET /v2/customers/my/invoices/22737513-0ea7-4206-8ceb-98a575af7681?page=1&per_page=2",
		},
	}, {
		name:  "balance",
		query: `{ balance { monthToDateBalance accountBalance monthToDateUsage generatedAt } }`,
		want:  `{"balance":{"monthToDateBalance":"23.44","accountBalance":"12.23","monthToDateUsage":"11.21","generatedAt":"2019-07-09T15:01:12Z"}}`,
		calls: []string{"GET /v2/customers/my/balance"},
	}, {
		name: "volumes",
		query: `{ volumes(first: 2) { totalCount pageInfo { hasNextPage hasPreviousPage }
			nodes { id name description sizeGigabytes createdAt dropletIds tags filesystemType filesystemLabel region { slug name available features sizes } } } }`,
		want: `{"volumes":{"totalCount":2,"pageInfo":{"hasNextPage":false,"hasPreviousPage":false},"nodes":[
			{"id":"506f78a4-e098-11e5-ad9f-000f53306ae1","name":"example","description":"Block store for examples","sizeGigabytes":10,"createdAt":"2016-03-02T17:00:49Z","dropletIds":[],"tags":["aninterestingtag"],"filesystemType":"ext4","filesystemLabel":"example",
				"region":{"slug":"nyc1","name":"New York 1","available":true,"features":["private_networking","backups","ipv6","metadata"],"sizes":["s-1vcpu-1gb","s-1vcpu-2gb"]}},
			{"id":"506f78a4-e098-11e5-ad9f-000f53305eb2","name":"example","description":null,"sizeGigabytes":10,"createdAt":"2016-03-02T17:01:49Z","dropletIds":[],"tags":[],"filesystemType":null,"filesystemLabel":null,
				"region":{"slug":"nyc3","name":null,"available":null,"features":[],"sizes":[]}}]}}`,
		calls: []string{"GET /v2/volumes?page=1&per_page=2"},
	}, {
		name:  "volume by id",
		query: `{ volume(id: "506f78a4-e098-11e5-ad9f-000f53306ae1") { id name createdAt dropletIds tags region { slug } } }`,
		want:  `{"volume":{"id":"506f78a4-e098-11e5-ad9f-000f53306ae1","name":"example","createdAt":"2020-03-02T17:00:49Z","dropletIds":[],"tags":[],"region":{"slug":"nyc1"}}}`,
		calls: []string{"GET /v2/volumes/506f78a4-e098-11e5-ad9f-000f53306ae1"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stub.calls()
			resp := h.post(c.query, nil)
			if len(resp.Errors) > 0 {
				t.Fatalf("errors: %+v", resp.Errors)
			}
			assertJSON(t, c.name, resp.Data, c.want)
			assertCalls(t, c.name, stub.calls(), c.calls)
		})
	}
}
