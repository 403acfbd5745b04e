package graph

import "fmt"

// maxIDLength bounds an invoice uuid or a volume id. DigitalOcean's are UUIDs
// (36 characters); the bound leaves room for other spellings and keeps an
// absurd argument from reaching a URL or a log line.
const maxIDLength = 64

// checkID refuses, before any upstream call, an id that cannot address a
// DigitalOcean resource: empty, longer than maxIDLength, or with a character
// other than a letter, a digit, '-' or '_' (a path separator, a dot, an escape).
func checkID(arg, id string) error {
	if id == "" {
		return &inputError{fmt.Sprintf("`%s` must not be empty", arg)}
	}
	if len(id) > maxIDLength || !isIDText(id) {
		return &inputError{fmt.Sprintf("`%s` must be 1 to %d letters, digits, '-' or '_'", arg, maxIDLength)}
	}
	return nil
}

func isIDText(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
