// Package datasets embeds the default series the server runs on, so a
// fresh build serves without any file. Clients name a dataset; they never
// pass a server path. Credits are in SOURCES.md.
package datasets
