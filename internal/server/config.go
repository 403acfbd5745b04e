package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oceangraph/oceangraph/graph"
	"github.com/oceangraph/oceangraph/internal/httpguard"
	"github.com/oceangraph/oceangraph/internal/ratebudget"
	"github.com/oceangraph/oceangraph/internal/shared"
	"github.com/oceangraph/oceangraph/internal/tokencache"
	"github.com/oceangraph/oceangraph/upstream"
)

// Config is every setting of the server, read once at start from flags and
// the environment (a flag wins over its variable). The README's table lists them.
type Config struct {
	ListenHost string
	Port       int
	APIURL     string // DIGITALOCEAN_API_URL; empty: the built-in sandbox
	Token      string // DIGITALOCEAN_TOKEN; used when a request brings none
	PublicURL  string
	// TrustedProxies may say, in Forwarded or X-Forwarded-*, how a client reached this server.
	TrustedProxies  []netip.Prefix
	FileLinkKey     []byte
	FileLinkTTL     time.Duration
	UpstreamTimeout time.Duration
	UpstreamRetries int
	MaxConcurrency  int
	Naive           bool
	Introspection   bool
	LogFormat       string
	ShutdownTimeout time.Duration
	ShutdownDrain   time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	AssetsDir       string
	// CORSOrigins may call /query and the downloads from a browser.
	CORSOrigins  httpguard.Origins
	MaxBodyBytes int64
	// Base64 bounds InvoiceFile.base64: per file, per request, over all requests in flight.
	MaxBase64FileBytes, MaxBase64RequestBytes, MaxBase64ProcessBytes int64
	// MaxUpstreamBytes bounds the DigitalOcean JSON one request holds.
	MaxUpstreamBytes int64
	// Guards bound each operation's cost, depth and upstream calls.
	Guards graph.GuardLimits
	// OTLPEndpoint is the OTLP/HTTP collector's base URL; empty: no tracing.
	OTLPEndpoint string
	// Shared is what replicas share and what outlives a request (shared.go).
	Shared SharedConfig
}

// setting describes one configuration value: its flag, its variable and its default.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"host", "LISTEN_HOST", "127.0.0.1", "address to listen on; 0.0.0.0 or :: to accept connections from other machines"},
	{"port", "PORT", "8080", "TCP port to listen on; 0 picks a free one (the log says which)"},
	{"api-url", "DIGITALOCEAN_API_URL", "", "DigitalOcean API base URL, e.g. https://api.digitalocean.com; empty: the built-in sandbox"},
	{"token", "DIGITALOCEAN_TOKEN", "", "DigitalOcean token used when a request carries no Authorization header"},
	{"public-url", "PUBLIC_URL", "", "scheme://host[:port] clients reach this server at, for file links (set it in production); empty: taken from each request's Host"},
	{"trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated addresses or CIDR ranges of reverse proxies whose Forwarded or X-Forwarded-Proto/Host headers say how clients reached this server; empty: none"},
	{"file-link-key", "FILE_LINK_KEY", "", "base64 key (>= 32 bytes) that signs and seals file links; empty: a random key per start"},
	{"file-link-ttl", "FILE_LINK_TTL", graph.DefaultFileLinkTTL.String(), "how long a file link stays valid, at most 24h"},
	{"upstream-timeout", "UPSTREAM_TIMEOUT", "30s", "bound on one upstream call, retries included; for a CSV or PDF, on the wait for its headers and on each silence while it streams, and on the whole file for filename, byteSize and base64"},
	{"upstream-retries", "UPSTREAM_RETRIES", strconv.Itoa(upstream.DefaultMaxRetries), "retries of an idempotent upstream GET on 429, 502-504 and reset connections"},
	{"max-concurrency", "MAX_CONCURRENCY", strconv.Itoa(graph.DefaultMaxConcurrency), "upstream calls one GraphQL request may have in flight at once"},
	{"naive-upstream", "NAIVE_UPSTREAM", "false", "benchmarks only: no loaders, no de-duplication, one upstream call at a time"},
	{"introspection", "INTROSPECTION", "", "allow schema introspection (default: on with the sandbox, off with a real API URL)"},
	{"log-format", "LOG_FORMAT", "", "text or json (default: text with the sandbox, json otherwise)"},
	{"shutdown-drain", "SHUTDOWN_DRAIN", "5s", "after SIGINT/SIGTERM, how long /readyz answers 503 while requests are still served, so that a load balancer stops sending new ones; 0s: none"},
	{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "20s", "how long in-flight requests may run on after the drain; those still running then get SHUTTING_DOWN"},
	{"read-timeout", "READ_TIMEOUT", "30s", "bound on reading a whole request"},
	{"write-timeout", "WRITE_TIMEOUT", "5m", "bound on writing a whole response (downloads included)"},
	{"idle-timeout", "IDLE_TIMEOUT", "2m", "how long an idle keep-alive connection stays open"},
	{"assets-dir", "PLAYGROUND_ASSETS_DIR", "web/dist", "where the Playground's JavaScript and CSS were built; absent: a CDN"},
	{"cors-allowed-origins", "CORS_ALLOWED_ORIGINS", "", "comma-separated origins whose pages may call the API (https://app.example.com, http://localhost:*, https://*.example.com, *); none: no CORS (default: any localhost port with the sandbox, none otherwise)"},
	{"max-body-bytes", "MAX_BODY_BYTES", strconv.Itoa(httpguard.DefaultMaxBodyBytes), "largest /query request body; a larger one gets 413"},
	{"max-base64-file-bytes", "MAX_BASE64_FILE_BYTES", strconv.Itoa(graph.DefaultMaxBase64FileBytes), "largest invoice file InvoiceFile.base64 serves; a larger one is null with BAD_USER_INPUT (use url)"},
	{"max-base64-request-bytes", "MAX_BASE64_REQUEST_BYTES", strconv.Itoa(graph.DefaultMaxBase64RequestBytes), "base64 one request may write, each base64 field written (aliases count) charged at the largest file, encoded, before anything runs"},
	{"max-base64-process-bytes", "MAX_BASE64_PROCESS_BYTES", strconv.Itoa(graph.DefaultMaxBase64ProcessBytes), "base64 all requests in flight may write together, charged the same way"},
	{"max-upstream-bytes", "MAX_UPSTREAM_BYTES", strconv.Itoa(graph.DefaultMaxUpstreamBytes), "bytes of DigitalOcean JSON one request may hold; past it a field fails with UPSTREAM_BYTES_EXCEEDED"},
	{"max-complexity", "MAX_COMPLEXITY", strconv.Itoa(graph.DefaultMaxComplexity), "largest operation cost, in which a connection's selection counts once per requested item"},
	{"max-depth", "MAX_DEPTH", strconv.Itoa(graph.DefaultMaxDepth), "deepest field nesting of an operation (introspection excepted)"},
	{"max-upstream-calls", "MAX_UPSTREAM_CALLS", strconv.Itoa(graph.DefaultMaxUpstreamCalls), "DigitalOcean calls one request may make, estimated before it runs; a query over it is refused"},
	{"apq-cache-size", "APQ_CACHE_SIZE", strconv.Itoa(graph.DefaultAPQCacheSize), "automatic persisted queries kept in memory (LRU)"},
	{"otel-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP collector base URL for traces, e.g. http://localhost:4318; empty: tracing off"},
	{"redis-url", "REDIS_URL", "", "Redis the replicas share (redis://[:password@]host:port/db, rediss:// for TLS): cache, persisted queries, idempotency keys, token rechecks, rate budget; empty: all in this process"},
	{"redis-wait", "REDIS_WAIT", shared.DefaultRedisWait.String(), "bound on each Redis call; past it the call is served in this process (widen it on a slow network to Redis; at most 5s)"},
	{"cache-bytes", "CACHE_BYTES", strconv.Itoa(tokencache.DefaultMaxBytes), "bytes of the in-process cache of issued invoices' data; 0: no cache across requests"},
	{"cache-file-max-bytes", "CACHE_FILE_MAX_BYTES", strconv.Itoa(graph.DefaultCacheFileMaxBytes), "largest issued invoice's CSV or PDF the cache keeps (sealed, per token) for the file fields and downloads; a larger one streams from DigitalOcean every time; 0: no file is cached"},
	{"cache-list-ttl", "CACHE_LIST_TTL", "0s", "how long the lists (billing history, invoices, volumes) may be answered from the cache; 0s: never"},
	{"cache-secret", "CACHE_SECRET", "", "base64 key (>= 32 bytes) behind the cache's keys and seals; empty: derived from FILE_LINK_KEY"},
	{"token-recheck", "TOKEN_RECHECK", shared.DefaultTokenRecheck.String(), "how long after DigitalOcean last accepted a token its cached data is served without proving it again"},
	{"rate-limit-per-minute", "RATE_LIMIT_PER_MINUTE", "", "DigitalOcean calls a token may make per minute, checked before an operation runs; 0: no budget (default: 250 with a real API URL, 0 with the sandbox)"},
	{"rate-reserve", "RATE_RESERVE", strconv.Itoa(ratebudget.DefaultReserve), "calls of the per-minute budget that only single-call operations may use"},
}

// LoadConfig parses args (without the program name) and the environment.
// An invalid value is an error that names the setting.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("oceangraph", flag.ContinueOnError)
	raw := map[string]*string{}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		raw[s.flag] = fs.String(s.flag, def, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	p := parser{raw: raw}
	cfg := Config{
		Port:            p.int("port", 0, 65535),
		APIURL:          p.url("api-url"),
		Token:           strings.TrimSpace(*raw["token"]),
		PublicURL:       p.origin("public-url"),
		TrustedProxies:  p.prefixes("trusted-proxies"),
		FileLinkTTL:     p.durationUpTo("file-link-ttl", maxFileLinkTTL),
		UpstreamTimeout: p.duration("upstream-timeout"),
		UpstreamRetries: p.int("upstream-retries", -1, 10),
		MaxConcurrency:  p.int("max-concurrency", 1, 64),
		ShutdownTimeout: p.duration("shutdown-timeout"),
		ShutdownDrain:   p.durationOrZero("shutdown-drain"),
		LogFormat:       *raw["log-format"],
		ListenHost:      *raw["host"],
		ReadTimeout:     p.duration("read-timeout"),
		WriteTimeout:    p.duration("write-timeout"),
		IdleTimeout:     p.duration("idle-timeout"),
		AssetsDir:       *raw["assets-dir"],
	}
	cfg.Naive = p.bool("naive-upstream")
	cfg.Introspection = cfg.APIURL == ""
	if v := *raw["introspection"]; v != "" {
		cfg.Introspection = p.bool("introspection")
	}
	switch cfg.LogFormat {
	case "":
		cfg.LogFormat = "json"
		if cfg.APIURL == "" {
			cfg.LogFormat = "text"
		}
	case "text", "json":
	default:
		p.fail("log-format", "want text or json")
	}
	cfg.FileLinkKey = p.key("file-link-key")
	cfg.CORSOrigins = p.origins("cors-allowed-origins", cfg.APIURL == "")
	cfg.MaxBodyBytes = int64(p.int("max-body-bytes", 1024, 64<<20))
	cfg.MaxBase64FileBytes = int64(p.int("max-base64-file-bytes", 1024, 1<<30))
	cfg.MaxBase64RequestBytes = int64(p.int("max-base64-request-bytes", 1024, 1<<30))
	cfg.MaxBase64ProcessBytes = int64(p.int("max-base64-process-bytes", 1024, 1<<30))
	cfg.MaxUpstreamBytes = int64(p.int("max-upstream-bytes", 1<<20, 1<<30))
	cfg.Guards = graph.GuardLimits{
		MaxComplexity:    p.int("max-complexity", 1, 1<<30),
		MaxDepth:         p.int("max-depth", 1, 100),
		MaxUpstreamCalls: p.int("max-upstream-calls", 1, 100000),
		APQCacheSize:     p.int("apq-cache-size", 1, 1<<20),
	}
	cfg.OTLPEndpoint = p.url("otel-endpoint")
	cfg.Shared = p.shared(cfg.APIURL == "", cfg.FileLinkKey)
	return cfg, p.err
}

// maxFileLinkTTL bounds FILE_LINK_TTL: a link is a bearer credential that
// nothing can revoke short of changing FILE_LINK_KEY.
const maxFileLinkTTL = 24 * time.Hour

// parser converts raw setting values, remembering the first failure.
type parser struct {
	raw map[string]*string
	err error
}

func (p *parser) fail(name, why string) {
	if p.err == nil {
		env := name
		for _, s := range settings {
			if s.flag == name {
				env = s.env
			}
		}
		p.err = fmt.Errorf("invalid %s (-%s) %q: %s", env, name, *p.raw[name], why)
	}
}

func (p *parser) int(name string, lo, hi int) int {
	n, err := strconv.Atoi(*p.raw[name])
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("want a whole number from %d to %d", lo, hi))
	}
	return n
}

func (p *parser) duration(name string) time.Duration {
	d, err := time.ParseDuration(*p.raw[name])
	if err != nil || d <= 0 {
		p.fail(name, "want a positive duration such as 30s or 5m")
	}
	return d
}

func (p *parser) durationUpTo(name string, most time.Duration) time.Duration {
	d := p.duration(name)
	if d > most {
		p.fail(name, "want at most "+most.String())
	}
	return d
}

// origin reads scheme://host[:port], the whole of what a file link starts
// with; a trailing slash is dropped, a path, query, fragment or user refused.
func (p *parser) origin(name string) string {
	v := strings.TrimRight(p.url(name), "/")
	if u, err := url.Parse(v); err == nil && (u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.ForceQuery) {
		p.fail(name, "want scheme://host[:port] only, without a path, query, fragment or user")
	}
	return v
}

// prefixes reads comma-separated addresses (one host each) and CIDR ranges.
func (p *parser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, entry := range strings.Split(*p.raw[name], ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if addr, err := netip.ParseAddr(entry); err == nil {
			out = append(out, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			p.fail(name, fmt.Sprintf("%q is neither an IP address nor a CIDR range", entry))
			continue
		}
		out = append(out, prefix.Masked())
	}
	return out
}

func (p *parser) bool(name string) bool {
	b, err := strconv.ParseBool(*p.raw[name])
	if err != nil {
		p.fail(name, "want true or false")
	}
	return b
}

func (p *parser) url(name string) string {
	v := strings.TrimSpace(*p.raw[name])
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail(name, "want an absolute http(s) URL")
	}
	return v
}

// origins reads an origin list; empty takes the default (dev origins with
// the sandbox), "none" is no origin at all.
func (p *parser) origins(name string, sandbox bool) httpguard.Origins {
	v := strings.TrimSpace(*p.raw[name])
	switch {
	case v == "" && sandbox:
		v = httpguard.DevOrigins
	case v == "none":
		v = ""
	}
	l, err := httpguard.ParseOrigins(v)
	if err != nil {
		p.fail(name, err.Error())
	}
	return l
}

func (p *parser) key(name string) []byte {
	v := *p.raw[name]
	if v == "" {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			p.fail(name, err.Error())
		}
		return k
	}
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		k, err = base64.RawURLEncoding.DecodeString(v)
	}
	if err != nil || len(k) < 32 {
		p.fail(name, errors.New("want base64 of at least 32 bytes (e.g. `openssl rand -base64 32`)").Error())
	}
	return k
}
