module driftless.dev/gotmpl-oracle

go 1.22
