package hub

import "net"

// DefaultLogOrigin is the audit log's origin for a hub named hostnames:
// "<first DNS name>/audit" ("<first hostname>/audit" if all are IPs,
// "localhost/audit" without any), so that no two hubs sign their logs
// with the same name by default.
func DefaultLogOrigin(hostnames []string) string {
	for _, h := range hostnames {
		if net.ParseIP(h) == nil {
			return h + "/audit"
		}
	}
	if len(hostnames) > 0 {
		return hostnames[0] + "/audit"
	}
	return "localhost/audit"
}
