"""Charts and reports of runs, sweeps and single configurations.

Split as Optuna's visualization is: figure builders take DataFrames and return plotly Figures (no I/O);
writers turn figures into files (one self-contained HTML, PNG/SVG through kaleido); ``dse recommend``'s charts
take its ``recommendation.json`` document instead, ``dse validate``'s its ``Validation.rows``. plotly is imported only
inside the builders and writers, so ``import dse.report`` stays light (the CLI's answer table uses it).
"""

from dse.report._answer import (
    TIE_RTOL,
    Pick,
    best_per_hardware,
    best_per_objective,
    empty_front,
    knee,
    knee_position,
    lexicographic_best,
)
from dse.report._config import memory_chart, operator_group, roofline_chart, time_breakdown
from dse.report._data import Bound, RunResults, SweepPoint, SweepResults, load_results
from dse.report._html import Chart, write_html
from dse.report._labels import (
    DISPLAY,
    Display,
    best_word,
    column_name,
    config_labels,
    format_metric,
    format_number,
    format_usd,
    metric_value,
    shown_parameters,
)
from dse.report._recommend import cost_vs_load_chart, hardware_colours, rent_vs_buy_chart, tornado_chart, win_rate_chart
from dse.report._recommend_page import config_text, workload_text
from dse.report._report import (
    DEFAULT_PAIRS,
    FIGURES,
    REPORT,
    ReportFiles,
    analysis_report,
    recommendation_charts,
    recommendation_report,
    report,
    run_charts,
    validation_charts,
    validation_report,
)
from dse.report._scatter import pareto_scatter, pareto_scatter_3d
from dse.report._static import FORMATS, IMAGE_WIDTH, PNG_SCALE, ExportError, find_browser, write_images
from dse.report._sweeps import sweep_overlay, sweep_panels
from dse.report._thin import CELLS, CELLS_3D, thin
from dse.report._trials import (
    best_per_hardware_chart,
    hypervolume_curve,
    hypervolume_history,
    parallel_coordinates,
    parallel_rows,
)
from dse.report._validation import error_by_hardware_chart, predicted_vs_measured_chart, validation_markers

__all__ = [
    "CELLS",
    "CELLS_3D",
    "DEFAULT_PAIRS",
    "DISPLAY",
    "FIGURES",
    "FORMATS",
    "IMAGE_WIDTH",
    "PNG_SCALE",
    "REPORT",
    "TIE_RTOL",
    "Bound",
    "Chart",
    "Display",
    "ExportError",
    "Pick",
    "ReportFiles",
    "RunResults",
    "SweepPoint",
    "SweepResults",
    "analysis_report",
    "best_per_hardware",
    "best_per_hardware_chart",
    "best_per_objective",
    "best_word",
    "column_name",
    "config_labels",
    "config_text",
    "cost_vs_load_chart",
    "empty_front",
    "error_by_hardware_chart",
    "find_browser",
    "format_metric",
    "format_number",
    "format_usd",
    "hardware_colours",
    "hypervolume_curve",
    "hypervolume_history",
    "knee",
    "knee_position",
    "lexicographic_best",
    "load_results",
    "memory_chart",
    "metric_value",
    "operator_group",
    "parallel_coordinates",
    "parallel_rows",
    "pareto_scatter",
    "pareto_scatter_3d",
    "predicted_vs_measured_chart",
    "recommendation_charts",
    "recommendation_report",
    "rent_vs_buy_chart",
    "report",
    "roofline_chart",
    "run_charts",
    "shown_parameters",
    "sweep_overlay",
    "sweep_panels",
    "thin",
    "time_breakdown",
    "tornado_chart",
    "validation_charts",
    "validation_markers",
    "validation_report",
    "win_rate_chart",
    "workload_text",
    "write_html",
    "write_images",
]
