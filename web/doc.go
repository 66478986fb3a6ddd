// Package web serves Kairoscope's dashboard: a page that follows training
// live over /ws, draws its curves with uPlot and asks /ws/predict for a
// forecast. Its assets are built into dist/ by `make web` (npm ci, then
// build.mjs), committed, and embedded here, so the binary serves the page
// without Node. It serves static files only and must not import ws, schema,
// engine or CUDA code: the page learns everything else from the server's
// API, like any other client.
package web
