package wordcount

import (
	"strings"
	"testing"
)

func TestSplitsOnUnicodeWhitespaceAsRust(t *testing.T) {
	text := "a\tb\u000bc\u000cd\re f\u0085g\u00a0h\u1680i\u2000j\u200ak\u2028l\u2029m\u202fn\u205fo\u3000p" +
		" x\u001cy z\ufeffw q\u200bv u\u180et  naïve 🚀rocket "
	var words []string
	for rest := []byte(text); ; {
		word, after, found := NextWord(rest)
		if !found {
			break
		}
		words = append(words, string(word))
		rest = after
	}
	want := "a b c d e f g h i j k l m n o p x\u001cy z\ufeffw q\u200bv u\u180et naïve 🚀rocket"
	if got := strings.Join(words, " "); got != want {
		t.Fatalf("words %q, want %q", got, want)
	}
}
