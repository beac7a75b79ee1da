package specutils

import (
	"regexp"
	"testing"
)

func TestInIDCharsetMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[\w+.-]+$`)
	for c := 0; c < 256; c++ {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}) + "b"} {
			if re.MatchString(s) != inIDCharset(s) {
				t.Fatalf("%q: regexp %v, inIDCharset %v", s, re.MatchString(s), inIDCharset(s))
			}
		}
	}
	for _, s := range []string{"", "abc", "a/b", "ü", "a b", "A_9+.-"} {
		if re.MatchString(s) != inIDCharset(s) {
			t.Fatalf("%q mismatch", s)
		}
	}
}
