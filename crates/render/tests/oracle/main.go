// Reads one YAML document on stdin and prints what kubectl's YAML-to-JSON step makes of it
// (sigs.k8s.io/yaml.YAMLToJSON), or "ERROR: ..." on failure.
package main

import (
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	var out []byte
	var err error
	if len(os.Args) > 1 && os.Args[1] == "strict" {
		out, err = yaml.YAMLToJSONStrict(in)
	} else {
		out, err = yaml.YAMLToJSON(in)
	}
	if err != nil {
		fmt.Printf("ERROR: %v\n", err)
		return
	}
	fmt.Println(string(out))
}
