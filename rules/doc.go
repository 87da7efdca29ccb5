// Package rules is driftwatch's Falco-compatible rules engine: it loads Falco
// rules files (lists, macros, rules, exceptions, overrides), parses and
// compiles their conditions into allocation-free evaluators indexed by event
// type, extracts Falco's fields from enriched events, formats Falco output
// strings and alerts, and hot-reloads rule sets. The project's own default
// rules live in rules/default and are embedded in the binary.
package rules
