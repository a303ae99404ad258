package operation

import "github.com/crossroads-hub/crossroads"

// checkMutation checks what is particular to an operation of kind mutation
// (crossroads.OperationMutation): the provider publishes it to the hub, so
// it declares no method, path, query or body, only the fields its payload
// may carry (checked with every operation's). Matchers leave it out: an
// exchange never reaches it.
func checkMutation(op *crossroads.Operation, bad func(op *crossroads.Operation, format string, args ...any)) {
	if op.Kind != crossroads.OperationMutation {
		bad(op, "kind %q: want empty (a call) or %q", trunc(op.Kind), crossroads.OperationMutation)
		return
	}
	if op.Method != "" || op.Path != "" || len(op.Query) > 0 || op.Body != "" {
		bad(op, "a mutation is published by the provider, not called: it declares no method, path, query or body")
	}
}
