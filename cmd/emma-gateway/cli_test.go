package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/internal/emulator"
)

const (
	emuPublic  = "test-public-key"
	emuPrivate = "test-private-key-SECRET"
)

// startEmulator serves an emulator on loopback and returns it with its URL.
func startEmulator(t *testing.T, mutate func(*emulator.Config)) (*emulator.Emulator, string) {
	t.Helper()
	cfg := emulator.DefaultConfig()
	cfg.PublicKey, cfg.PrivateKey, cfg.AccountID = emuPublic, emuPrivate, 100
	if mutate != nil {
		mutate(&cfg)
	}
	em, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	return em, srv.URL
}

// runCLI runs emma-gateway with args, as main does, and returns the exit code
// and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// webhooksCLI runs emma-gateway webhooks SUB against the API at api with
// the emulator's credentials, and fast retries.
func webhooksCLI(t *testing.T, api, sub string, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"webhooks", sub, "--api-url", api, "--account-id", "100",
		"--public-key", emuPublic, "--private-key", emuPrivate, "--retries", "1", "--retry-backoff", "1ms"}, args...)
	code, stdout, stderr := runCLI(t, all...)
	if strings.Contains(stdout+stderr, emuPrivate) {
		t.Fatalf("the private key was printed:\n%s\n%s", stdout, stderr)
	}
	return code, stdout, stderr
}
