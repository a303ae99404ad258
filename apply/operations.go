package apply

import "github.com/crossroads-hub/crossroads"

// checkOperations checks a service's operations beyond what the registers
// know (path templates, methods, query parameters, bodies): the operation
// package's rules, called here once that package exists in the tree.
func checkOperations(s crossroads.Service) []error { return nil }
