package graph

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// errBadHost: without PUBLIC_URL a file link is built on the host the caller
// reached, and the request named none that is a host[:port].
var errBadHost = errors.New("the request's Host (or a trusted proxy's forwarded host) is not a host[:port]: file links cannot be built (the server's operator can set PUBLIC_URL)")

// baseURLOf derives this server's base URL from the request: its Host, or
// when the peer is a trusted proxy, what the proxy forwarded (Forwarded,
// else X-Forwarded-Proto and X-Forwarded-Host). Anyone else's forwarding
// headers are ignored: they would let a caller mint links on a host of its
// choice. A host that is not a plain host[:port] is errBadHost.
func baseURLOf(r *http.Request, trusted []netip.Prefix) (string, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if fromTrustedProxy(r.RemoteAddr, trusted) {
		proto, fwdHost := forwardedFor(r.Header)
		if proto == "http" || proto == "https" {
			scheme = proto
		}
		if fwdHost != "" {
			host = fwdHost
		}
	}
	if !isHostPort(host) {
		return "", errBadHost
	}
	return (&url.URL{Scheme: scheme, Host: strings.ToLower(host)}).String(), nil
}

// fromTrustedProxy reports whether the peer's address is in a trusted range.
func fromTrustedProxy(remoteAddr string, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedFor reads the proto and host the nearest client-side proxy saw:
// the first element of Forwarded (RFC 7239), else the first values of
// X-Forwarded-Proto and X-Forwarded-Host.
func forwardedFor(h http.Header) (proto, host string) {
	if f := h.Get("Forwarded"); f != "" {
		first, _, _ := strings.Cut(f, ",")
		for pair := range strings.SplitSeq(first, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			switch strings.ToLower(k) {
			case "proto":
				proto = strings.ToLower(v)
			case "host":
				host = v
			}
		}
		return proto, host
	}
	return strings.ToLower(firstValue(h.Get("X-Forwarded-Proto"))), firstValue(h.Get("X-Forwarded-Host"))
}

// firstValue is the first of a comma-separated header's values (the client's end of a proxy chain).
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// isHostPort reports whether s is a DNS name, an IPv4 address or a bracketed
// IPv6 address, with an optional port: nothing a URL could read as a user,
// a path, a query or markup.
func isHostPort(s string) bool {
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host = s[:i]
		port, err := strconv.Atoi(s[i+1:])
		if err != nil || port < 1 || port > 65535 || !isDigits(s[i+1:]) {
			return false
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && addr.Is6() && addr.Zone() == ""
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' || !isIDText(label) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
