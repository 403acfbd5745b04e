package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"reflect"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	// encoding/json's semantics (v1) on the engine of encoding/json/v2, which
	// is in the standard library from Go 1.27: the same answers, about twice as
	// fast on a page of volumes, the bulk of the server's per-request work.
	json "github.com/go-json-experiment/json/v1"
)

// v1Tolerance is what encoding/json (v1) forgives and json/v2 does not by
// default: invalid UTF-8, names in another case (but not with other
// delimiters), a null leaving a value already set as it was. Decoding with it
// on v2's own path gives v1's answer about 15% faster than v1's path, which
// keeps the coercion below. Duplicate names stay refused on the fast path:
// DigitalOcean never sends them, and v1's path merges them its own way
// (FuzzDecodeJSON found {"action":{"id":1,"id":null}} read differently).
var v1Tolerance = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(true),
	jsonv2.MatchCaseInsensitiveNames(true),
	json.MatchCaseSensitiveDelimiter(true),
	json.MergeWithLegacySemantics(true),
)

// maxJSONBody bounds a JSON response read into memory. The largest real page,
// 200 volumes with full region objects, long names, descriptions and tags, is
// about 190 KB (TestLargestRealPageFitsTheBodyLimit): 2 MiB leaves ten times
// that, while a request fanning out to 60 calls cannot hold gigabytes.
const maxJSONBody = 2 << 20

// jsonContentType reports whether a 2xx's Content-Type may carry the JSON the
// endpoint promises. An absent type and text/plain (what Go's server sniffs
// when a handler sets none) are left to the decoder; text/html and the like
// are some proxy's page, not DigitalOcean's answer.
func jsonContentType(header string) bool {
	if header == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/plain" || strings.HasSuffix(mt, "+json")
}

// DecodeJSON decodes a 2xx body into out, a pointer to a struct, as every call
// of the client does (and the benchmark's floor program, bench/). The body must
// be one JSON object: empty bodies, null, arrays and trailing bytes are errors.
// out keeps no reference to body, which the caller may reuse.
//
// The spec types money, counts and durations as strings. Should a number turn
// up in such a field (or a numeric string in an integer field), it is read
// with its literal text rather than failing the whole page: "amount": 12.30
// becomes "12.30", exactly, never a float.
func DecodeJSON(body []byte, out any) error {
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 {
		return errors.New("empty body")
	} else if trimmed[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	if jsonv2.Unmarshal(body, out, v1Tolerance) == nil {
		return nil
	}
	// Anything the fast path refuses takes v1's path, so errors and coerced
	// values read exactly as they always did.
	reflect.ValueOf(out).Elem().SetZero()
	err := json.Unmarshal(body, out)
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var tree any
	if dec.Decode(&tree) != nil {
		return err
	}
	target := reflect.ValueOf(out).Elem()
	fixed, mErr := json.Marshal(coerce(tree, target.Type()))
	if mErr != nil {
		return err
	}
	target.SetZero()
	return json.Unmarshal(fixed, out)
}

// coerce rewrites, in a JSON tree decoded with UseNumber, the numbers that
// sit where t wants a string into that string, and integer strings where t
// wants an integer into numbers. Everything else is left for json.Unmarshal
// to accept or reject.
func coerce(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case json.Number:
		if t.Kind() == reflect.String {
			return string(x)
		}
	case string:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if _, err := strconv.ParseInt(x, 10, 64); err == nil {
				return json.Number(x)
			}
		}
	case []any:
		if t.Kind() == reflect.Slice {
			for i := range x {
				x[i] = coerce(x[i], t.Elem())
			}
		}
	case map[string]any:
		if t.Kind() == reflect.Struct {
			for i := range t.NumField() {
				f := t.Field(i)
				if val, ok := x[jsonName(f)]; ok {
					x[jsonName(f)] = coerce(val, f.Type)
				}
			}
		}
	}
	return v
}

// jsonName is the key encoding/json reads a struct field from.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// present insists on the object (under key) a 2xx body promises; without it
// the body is a decode error, and a write was carried out all the same.
func present[T any](obj *T, endpoint string, status int, key string) (*T, error) {
	if obj != nil {
		return obj, nil
	}
	e := &Error{Endpoint: endpoint, Status: status, Kind: KindDecode, Err: fmt.Errorf("response has no %q object", key)}
	if !idempotent(endpoint) {
		e.Outcome = OutcomeApplied
	}
	return nil, e
}
