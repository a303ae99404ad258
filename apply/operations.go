package apply

import (
	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/operation"
)

// checkOperations checks a service's operations beyond what the registers
// know (ids, methods, path templates and {subject}, query parameters,
// bodies, fields): the operation package's rules, the same the exchange
// matches calls with.
func checkOperations(s crossroads.Service) []error { return operation.CheckService(s) }
