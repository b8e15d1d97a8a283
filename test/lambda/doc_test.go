// Package lambdatest checks the Lambda side of wsgate end to end, beyond
// the handler tests in adapters/lambda:
//
//   - template_test.go: template.yaml parses with goformation, validates
//     against the SAM/CloudFormation schema goformation bundles, matches
//     infra/dynamodb's table, wires every setting, grants least privilege,
//     and each function's `make build-<LogicalId>` builds its bootstrap.
//   - emulator_test.go: both bootstrap binaries under the AWS Lambda
//     Runtime Interface Emulator against dynalite, fed the events/ files.
//   - parity_test.go: one scenario through the local server and the Lambda
//     handlers gives the same outcomes.
package lambdatest

import (
	"os"
	"path/filepath"
)

// repoRoot is the directory holding go.mod above the test's directory.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
