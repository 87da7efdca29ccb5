// Package profiler learns per-image behaviour profiles: what each container
// image normally executes, which files it touches and how, whom it talks to,
// which ports it serves and which privilege operations it performs.
//
// Events are generalised before counting (path tries that collapse fanned-out
// directories, token-shape collapse of generated names, ephemeral ports,
// optional CIDR grouping), counted per image with first/last-seen times, and
// moved through a learning lifecycle per category (learning → stable →
// detecting, or unstable) driven by a Good–Turing estimate of the probability
// of unseen behaviour. Profiles live in one bbolt file with a versioned schema,
// periodic checkpoints and JSON export/import. Scoring lives in package model;
// this package only learns and answers questions about counts.
//
// See docs/profiles.md for the key, the generalisation rules with examples,
// the lifecycle and the store.
package profiler
