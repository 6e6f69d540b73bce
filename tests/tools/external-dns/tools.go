//go:build tools

// Package tools pins the external-dns module this directory builds `external-dns` from.
package tools

import _ "sigs.k8s.io/external-dns"
