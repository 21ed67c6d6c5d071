// Reads one YAML document on stdin and prints what kubectl's YAML-to-JSON step makes of it
// (sigs.k8s.io/yaml.YAMLToJSON; YAMLToJSONStrict with the argument "strict"), or with the
// argument "toyaml" reads JSON and prints sigs.k8s.io/yaml.JSONToYAML of it (what
// kubectl's YAML printer writes). Failures print "ERROR: ...".
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
	if len(os.Args) > 1 && os.Args[1] == "toyaml" {
		out, err = yaml.JSONToYAML(in)
		if err != nil {
			fmt.Printf("ERROR: %v\n", err)
			return
		}
		fmt.Print(string(out))
		return
	}
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
