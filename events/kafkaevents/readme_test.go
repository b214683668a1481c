package kafkaevents

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeExampleIsCompiled keeps the README's consumer example true: its
// lines are those of consumeEngagement in example_test.go, in order, so the
// example the README shows is code that compiles against this package.
func TestReadmeExampleIsCompiled(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "`Example_consumerGroup`")
	if !ok {
		t.Fatal("README does not name Example_consumerGroup")
	}
	_, block, ok := strings.Cut(after, "```go\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("no go code block after the mention of Example_consumerGroup")
	}
	_, body, _ := strings.Cut(string(example), "func consumeEngagement(ctx context.Context) error {\n")
	lines := strings.Split(body, "\n")
	i := 0
	for _, want := range strings.Split(strings.TrimSpace(block), "\n") {
		want = strings.TrimSpace(want)
		for i < len(lines) && strings.TrimSpace(lines[i]) != want {
			i++
		}
		if i == len(lines) {
			t.Fatalf("README line %q is not in consumeEngagement (in order)", want)
		}
		i++
	}
	if n := strings.Count(strings.TrimSpace(block), "\n") + 1; n < 20 {
		t.Fatalf("README example has %d lines", n)
	}
}
