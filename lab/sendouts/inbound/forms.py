"""Forms of the desk's inbound pages: a result file to upload, an order to attach to, a reason to resolve."""

from typing import Any

from django import forms

# Above what any result file needs (a pathology report with an embedded PDF is a few MiB).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Result file from a lab (HL7 v2, .hl7 or .txt)",
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".hl7,.txt,.dat,text/plain"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size == 0:
            raise forms.ValidationError("The file is empty: choose the result file the lab sent.")
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; ask the lab to split it."
            )
        return upload


class AttachForm(forms.Form):
    """One field per order (OBR) of the message: the placer number or accession of the right order."""

    note = forms.CharField(
        label="Note (optional)",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, groups: int, labels: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        note = self.fields.pop("note")  # after the orders
        self.group_fields: list[str] = []
        for index in range(groups):
            name = f"order_{index}"
            said = f" ({labels[index]})" if index < len(labels) and labels[index] else ""
            self.fields[name] = forms.CharField(
                label=f"Order {index + 1}{said}: the right order's placer number or accession",
                max_length=40,
                widget=forms.TextInput(
                    attrs={"class": "form-control font-monospace", "autocomplete": "off", "data-scan-field": ""}
                ),
            )
            self.group_fields.append(name)
        self.fields["note"] = note

    def targets(self) -> dict[int, str]:
        return {index: self.cleaned_data[name] for index, name in enumerate(self.group_fields)}


class ResolveForm(forms.Form):
    reason = forms.CharField(
        label="Why nothing is filed",
        max_length=300,
        widget=forms.TextInput(
            attrs={
                "class": "form-control",
                "autocomplete": "off",
                "placeholder": "e.g. The lab resent it with corrected demographics",
            }
        ),
    )
