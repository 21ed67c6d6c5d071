// Command oracle-sprig is the gotmpl oracle with Sprig v3.3.0's TxtFuncMap added (the
// function map Helm uses). It reads one JSON case per line on stdin and writes one JSON
// result per line: the output, or the error Go reports.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

type tmplText struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

type testCase struct {
	Templates  []tmplText      `json:"templates"`
	Exec       string          `json:"exec"`
	Data       json.RawMessage `json:"data"`
	Typed      bool            `json:"typed"`
	MissingKey string          `json:"missingkey"`
}

type result struct {
	Out      string `json:"out"`
	Err      string `json:"err,omitempty"`
	ParseErr bool   `json:"parse_err,omitempty"`
}

// typedNumbers turns json.Number into int (or uint64, or float64), the way go-yaml v3
// types plain scalars: integers stay integers.
func typedNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return int(i)
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return u
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = typedNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = typedNumbers(e)
		}
		return x
	}
	return v
}

func run(c testCase) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res = result{Err: fmt.Sprintf("panic: %v", r)}
		}
	}()
	var data any
	dec := json.NewDecoder(bytes.NewReader(c.Data))
	if c.Typed {
		dec.UseNumber()
	}
	if err := dec.Decode(&data); err != nil {
		return result{Err: "bad data: " + err.Error()}
	}
	if c.Typed {
		data = typedNumbers(data)
	}
	var root *template.Template
	for _, t := range c.Templates {
		var tt *template.Template
		if root == nil {
			root = template.New(t.Name).Funcs(sprig.TxtFuncMap())
			if c.MissingKey != "" {
				root.Option("missingkey=" + c.MissingKey)
			}
			tt = root
		} else {
			tt = root.New(t.Name)
		}
		if _, err := tt.Parse(t.Text); err != nil {
			return result{Err: err.Error(), ParseErr: true}
		}
	}
	var buf bytes.Buffer
	if err := root.ExecuteTemplate(&buf, c.Exec, data); err != nil {
		return result{Out: buf.String(), Err: err.Error()}
	}
	return result{Out: buf.String()}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<28)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var c testCase
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "bad case:", err)
			os.Exit(2)
		}
		if err := enc.Encode(run(c)); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(2)
	}
}
