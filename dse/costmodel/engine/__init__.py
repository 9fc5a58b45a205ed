"""The fast engine: scores N candidates at once from tables built from ``dse.costmodel.physics``, adding only
speed (coefficient matrices, merged rows, blocked evaluation, closed-form sums over decode positions)."""
