// Package ownerfile makes a file readable by its owner only, and copies a
// file's access rules onto another, in each OS's terms: mode 0600 on Unix,
// a protected owner-only DACL on Windows. The agent uses it for file
// secrets and its SSH host key.
package ownerfile
