package receiver

import (
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// TestTokensFileIsReloadedOnTheTickOnly: on the fake clock, a changed
// tokens file is not read before the reload interval has passed, and is
// read once it has; a broken version keeps the tokens in force.
func TestTokensFileIsReloadedOnTheTickOnly(t *testing.T) {
	const a, b = "first-token-0000000000", "second-token-111111111"
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "tokens")
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		writeFile(t, file, a+"\n", base)
		ts, err := newTokenStore(Config{TokensFile: file}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go ts.watch(time.Minute, stop)
		accepts := func(tok string) bool { return ts.current().match(tok) != nil }

		writeFile(t, file, a+"\n"+b+"\n", base.Add(time.Second))
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if accepts(b) {
			t.Fatal("the file was reread before the interval passed")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !accepts(a) || !accepts(b) {
			t.Fatal("the changed file was not reread on the tick")
		}

		writeFile(t, file, "short\n", base.Add(2*time.Second))
		time.Sleep(time.Minute)
		synctest.Wait()
		if !accepts(b) {
			t.Fatal("a broken file replaced the tokens in force")
		}
	})
}
