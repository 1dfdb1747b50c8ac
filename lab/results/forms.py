"""Forms of the bench: one per panel, its fields made from the test's analytes. They validate; services decide."""

from django import forms

from lab.models import Analyte, KitLot, TestOrder
from lab.workflow import ResultType


def analyte_field(analyte: Analyte, *, required: bool = True) -> forms.Field:
    """An ordinal value as its scale (radio buttons, none chosen for you); a number with its unit."""
    label = f"{analyte.name} ({analyte.short_name})"
    if analyte.result_type == ResultType.ORDINAL:
        return forms.ChoiceField(
            label=label,
            choices=[(str(c), str(c)) for c in analyte.choices],
            widget=forms.RadioSelect,
            required=required,
        )
    attrs = {"autocomplete": "off", "class": "form-control result-value"}
    if analyte.result_type == ResultType.NUMERIC:
        attrs["inputmode"] = "decimal"
    return forms.CharField(label=label, max_length=40, required=required, widget=forms.TextInput(attrs=attrs))


class PanelForm(forms.Form):
    """One test's results: a value per analyte, the kit lot it ran on, and a confirmation for criticals."""

    def __init__(self, *args: object, order: TestOrder, lots: list[KitLot], **kwargs: object) -> None:
        super().__init__(*args, prefix=f"t{order.pk}", **kwargs)  # type: ignore[arg-type,misc]
        self.order = order
        self.analytes = list(order.test.analytes.all())
        self.fields["kit_lot"] = forms.ModelChoiceField(
            label="Kit lot",
            queryset=KitLot.objects.filter(pk__in=[lot.pk for lot in lots]).select_related("kit"),
            initial=lots[0].pk if len(lots) == 1 else None,
            empty_label=None if len(lots) == 1 else "Choose the lot it ran on",
        )
        for analyte in self.analytes:
            self.fields[f"a{analyte.pk}"] = analyte_field(analyte, required=False)  # the service names what's missing
        self.fields["comment"] = forms.CharField(label="Comment (optional)", max_length=300, required=False)
        self.fields["confirm_critical"] = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def analyte_fields(self) -> list[tuple[Analyte, forms.BoundField]]:
        return [(a, self[f"a{a.pk}"]) for a in self.analytes]

    def values(self) -> dict[int, str]:
        return {a.pk: str(self.cleaned_data.get(f"a{a.pk}") or "") for a in self.analytes}


class CorrectForm(forms.Form):
    value = forms.CharField(label="Corrected value", max_length=40)
    comment = forms.CharField(label="Comment", max_length=300, required=False)


class AmendForm(forms.Form):
    value = forms.CharField(label="Corrected value", max_length=40)
    reason = forms.CharField(label="Reason for the correction (printed with the amended result)", max_length=300)


class SendBackForm(forms.Form):
    reason = forms.CharField(label="What to check", max_length=300)


class CloseReviewForm(forms.Form):
    note = forms.CharField(label="What the review found", max_length=300)
