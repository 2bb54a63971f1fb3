// helmrender renders a Helm chart's templates offline, for machines without a helm binary.
//
// It mirrors the parts of Helm 3 the Stockpile chart uses: values.yaml deep-merged with -f files,
// the sprig functions, Helm's own include/tpl/toYaml/fromYaml/toJson/required/fail/lookup, the
// .Release/.Chart/.Capabilities/.Template/.Files objects, and output as one YAML stream with a
// "# Source:" comment before each document. It is a stand-in for `helm template`, not a copy of it:
// where helm is installed, the validation script runs the real thing as well.
//
// Usage: helmrender [-f values.yaml]... [-name release] [-namespace ns] CHART_DIR
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	var files valueFiles
	flag.Var(&files, "f", "values file merged over the chart's values.yaml (repeatable)")
	release := flag.String("name", "stockpile", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helmrender [-f values.yaml]... [-name r] [-namespace ns] CHART_DIR")
		os.Exit(2)
	}
	out, err := renderChart(flag.Arg(0), files, *release, *namespace)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

// mergeValues overlays src onto dst the way Helm coalesces user values: maps merge key by key,
// anything else replaces, and an explicit null deletes the key.
func mergeValues(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		srcMap, srcIsMap := v.(map[string]interface{})
		dstMap, dstIsMap := dst[k].(map[string]interface{})
		if srcIsMap && dstIsMap {
			dst[k] = mergeValues(dstMap, srcMap)
		} else {
			dst[k] = v
		}
	}
	return dst
}

func chartMetadata(chartDir string) (map[string]interface{}, error) {
	meta, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	// Helm exposes Chart.yaml fields with capitalised names (.Chart.Name, .Chart.AppVersion).
	chart := map[string]interface{}{}
	for k, v := range meta {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return chart, nil
}

// files gives templates read access to the chart's non-template files, like Helm's .Files.
type files struct{ root string }

func (f files) Get(name string) string {
	raw, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(name)))
	if err != nil {
		return ""
	}
	return string(raw)
}

type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func capabilities() map[string]interface{} {
	return map[string]interface{}{
		"KubeVersion": map[string]interface{}{"Version": "v1.27.1", "Major": "1", "Minor": "27",
			"GitVersion": "v1.27.1"},
		"APIVersions": apiVersions{"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"},
	}
}

// helmFuncs adds the functions Helm defines on top of sprig. include and tpl need the template
// set itself, so they close over a pointer that is filled in once the set exists.
func helmFuncs(root **template.Template) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env") // Helm removes these so a render cannot depend on the machine.
	delete(funcs, "expandenv")
	funcs["toYaml"] = func(v interface{}) string {
		out, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(out), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // like `helm template`: no cluster to look in
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := (*root).ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := (*root).Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	return funcs
}

func templateFiles(chartDir string) ([]string, error) {
	var names []string
	dir := filepath.Join(chartDir, "templates")
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" || ext == ".tpl" || ext == ".txt" {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}

func renderChart(chartDir string, valueFiles []string, release, namespace string) (string, error) {
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range valueFiles {
		overlay, err := readYAMLMap(f)
		if err != nil {
			return "", err
		}
		values = mergeValues(values, overlay)
	}
	chart, err := chartMetadata(chartDir)
	if err != nil {
		return "", err
	}
	chartName := fmt.Sprint(chart["Name"])
	paths, err := templateFiles(chartDir)
	if err != nil {
		return "", err
	}

	var root *template.Template
	root = template.New(chartName).Funcs(helmFuncs(&root)).Option("missingkey=zero")
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, _ := filepath.Rel(chartDir, p)
		name := path.Join(chartName, filepath.ToSlash(rel))
		raw, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if _, err := root.New(name).Parse(string(raw)); err != nil {
			return "", err
		}
		names = append(names, name)
	}

	var out strings.Builder
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || strings.HasSuffix(base, ".txt") {
			continue // partials and NOTES are not manifests
		}
		top := map[string]interface{}{
			"Values": values,
			"Chart":  chart,
			"Release": map[string]interface{}{"Name": release, "Namespace": namespace,
				"Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
			"Capabilities": capabilities(),
			"Template":     map[string]interface{}{"Name": name, "BasePath": path.Join(chartName, "templates")},
			"Files":        files{root: chartDir},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(text))
	}
	return out.String(), nil
}
