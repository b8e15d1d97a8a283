// Package web holds the browser side of wsgate: the dependency-free client
// module (client.js) and the dev console page (index.html with console.js
// and console.css), embedded so the local server can serve them.
package web

import "embed"

// FS holds the browser files at its root: index.html (the dev console,
// served at /), console.js, console.css and client.js (the ES module
// exporting WsgateClient, served at /client.js). Serve it with
// http.FileServerFS; its .js files need a JavaScript MIME type
// (text/javascript) for browsers to load them as modules.
//
//go:embed client.js index.html console.js console.css
var FS embed.FS
