package kafkait

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runPython runs deploy/kafka/python/consumers.py with the venv's python
// (EMMA_GATEWAY_IT_PYTHON, made by deploy/kafka/python/venv.sh) on the
// topics the test filled: confluent-kafka reads them, the CloudEvents SDK's
// Kafka binding decodes each message, jsonschema validates each value
// against schemas/, and librdkafka's murmur2 partitioner places each key.
// Its exit status and summary are asserted here.
func runPython(t *testing.T, c *cluster, prefix string, binary []string, binaryCount int, structured string, structuredCount int) {
	py := os.Getenv(envPython)
	if py == "" {
		t.Fatalf("%s is set but %s is not: make the venv with deploy/kafka/python/venv.sh", envBrokers, envPython)
	}
	schemas, err := filepath.Abs(filepath.Join("..", "..", "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("..", "..", "deploy", "kafka", "python", "consumers.py"),
		"--brokers", strings.Join(c.brokers, ","),
		"--binary", strings.Join(binary, ","), "--binary-count", strconv.Itoa(binaryCount),
		"--structured", structured, "--structured-count", strconv.Itoa(structuredCount),
		"--schemas", schemas, "--murmur-topic", prefix+".murmur2")
	out, err := cmd.Output()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	var sum struct {
		Binary          int      `json:"binary"`
		EventNames      int      `json:"event_names"`
		Structured      int      `json:"structured"`
		KeysPartitioned int      `json:"keys_partitioned"`
		Errors          []string `json:"errors"`
	}
	if jerr := json.Unmarshal(out, &sum); jerr != nil {
		t.Fatalf("consumers.py: %v (%v)\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
	}
	for _, e := range sum.Errors {
		t.Errorf("python: %s", e)
	}
	if err != nil {
		t.Fatalf("consumers.py: %v\n%s", err, stderr)
	}
	if sum.Binary != binaryCount || sum.EventNames != 20 || sum.Structured != structuredCount || sum.KeysPartitioned == 0 {
		t.Errorf("python summary %+v, want %d binary messages of 20 event names, %d structured", sum, binaryCount, structuredCount)
	}
	t.Logf("python (confluent-kafka, cloudevents, jsonschema): %d binary-mode messages of %d event names, %d structured-mode, %d keys on librdkafka's murmur2 partitions",
		sum.Binary, sum.EventNames, sum.Structured, sum.KeysPartitioned)
}
