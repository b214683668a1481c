package schemas

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

// BaseURL is where the schemas are published: the $id of each schema file
// is BaseURL followed by its file name, and so is the ce_dataschema header
// of each message.
const BaseURL = "https://github.com/emma-gateway/emma-gateway/schemas/"

// Names of the schemas that are not an event type's.
const (
	// Unrecognized is the schema of the values on the unrecognized topic.
	Unrecognized = "unrecognized"
	// DeadLetter is the schema of the headers of dead letters (their value
	// is the raw request, whatever it was).
	DeadLetter = "deadletter"
	// CloudEventsHeaders is the schema of the headers of every event
	// message, recognized or not.
	CloudEventsHeaders = "cloudevents-headers"
	// AsyncAPI is the file name of the AsyncAPI document.
	AsyncAPI = "asyncapi.yaml"
)

//go:embed *.json asyncapi.yaml
var files embed.FS

// FS returns the committed schema files (name.json, one per schema) and
// asyncapi.yaml.
func FS() fs.FS { return files }

// URL returns the published address of the schema called name ("message_open",
// [Unrecognized], ...).
func URL(name string) string { return BaseURL + name + ".json" }

// Names lists the JSON schemas, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".") // an embed.FS root always reads
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Handler serves the files under /schemas/: GET /schemas/ answers an index
// (JSON: each schema's name, path and $id, and the AsyncAPI document's
// path), GET /schemas/{name}.json a schema and GET /schemas/asyncapi.yaml
// the AsyncAPI document. It is mounted by the receiver at /schemas/*.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/schemas/")
		if name == "" || name == r.URL.Path {
			serveIndex(w)
			return
		}
		if strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := "application/schema+json"
		if path.Ext(name) == ".yaml" {
			ct = "application/yaml"
		}
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(b)
	})
}

// indexEntry is one schema in the index that GET /schemas/ answers.
type indexEntry struct {
	Name string `json:"name"`
	Path string `json:"path"`
	ID   string `json:"id"`
}

func serveIndex(w http.ResponseWriter) {
	idx := struct {
		Schemas  []indexEntry `json:"schemas"`
		AsyncAPI string       `json:"asyncapi"`
	}{AsyncAPI: "/schemas/" + AsyncAPI}
	for _, n := range Names() {
		idx.Schemas = append(idx.Schemas, indexEntry{Name: n, Path: "/schemas/" + n + ".json", ID: URL(n)})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(idx)
}
