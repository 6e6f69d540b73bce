//go:build tools

// Package tools pins the OpenTofu module this directory builds `tofu` from.
package tools

import _ "github.com/opentofu/opentofu/cmd/tofu"
