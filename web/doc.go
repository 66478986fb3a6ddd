// Package web serves Kairoscope's dashboard: a page that follows training
// live over /ws, draws its curves with uPlot and asks /ws/predict for a
// forecast. Its files in static/ are embedded here, uPlot among them
// (static/vendor/, copied from npm by `make web`: npm ci, then build.mjs,
// and committed), so the binary serves the page without Node. It serves static files only and must not import ws, schema,
// engine or CUDA code: the page learns everything else from the server's
// API, like any other client.
package web
