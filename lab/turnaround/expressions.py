"""SQL the turnaround dashboard computes in Postgres: minutes between two times, and percentiles."""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Aggregate, Expression, F, FloatField, Func
from django.db.models.sql.compiler import SQLCompiler


class Minutes(Func):
    """Minutes from ``start`` to ``end``; NULL when either is (so every aggregate leaves it out)."""

    template = "(EXTRACT(EPOCH FROM (%(expressions)s)) / 60.0)"
    arg_joiner = " - "
    output_field = FloatField()

    def __init__(self, start: str | Expression, end: str | Expression, **extra: Any) -> None:
        start_expr = F(start) if isinstance(start, str) else start
        end_expr = F(end) if isinstance(end, str) else end
        super().__init__(end_expr, start_expr, **extra)


class PercentileCont(Aggregate):
    """``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``: linear interpolation between
    the two nearest values, NULLs left out; FILTER (WHERE ...) when given ``filter``."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile's fraction is between 0 and 1.")
        self.fraction = fraction
        super().__init__(expression, **extra)

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        # A float literal, never user input: repr() of a checked float is plain digits.
        extra_context["fraction"] = repr(self.fraction)
        return super().as_sql(
            compiler, connection, function=function, template=template, arg_joiner=arg_joiner, **extra_context
        )
