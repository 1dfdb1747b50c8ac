"""Forms of the results inbox: what was shown (to sign exactly that), and whom a supervisor signs for."""

import uuid as uuid_lib

from django import forms
from django.db.models import QuerySet

from backoffice.models import User
from lab.inbox.services import Shown


class ShownField(forms.Field):
    """The results a page listed, each as a hidden "uuid:version" pair."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[Shown]:
        if not value:
            return []
        if not isinstance(value, list | tuple):
            raise forms.ValidationError("The list of results shown was not understood. Reload the inbox.")
        shown: list[Shown] = []
        for item in value:
            ref, _, version = str(item).partition(":")
            try:
                shown.append((uuid_lib.UUID(ref), int(version)))
            except ValueError:
                raise forms.ValidationError("The list of results shown was not understood. Reload the inbox.") from None
        return shown


class AcknowledgeForm(forms.Form):
    shown = ShownField(required=True, error_messages={"required": "There are no results to acknowledge."})
    # The clinician a supervisor is signing for, so the inbox they come back to is the same one.
    clinician = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), required=False)


class ActingForForm(forms.Form):
    clinician = forms.ModelChoiceField(
        label="Inbox of",
        queryset=User.objects.none(),
        required=False,
        empty_label="My own results",
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )

    def __init__(self, *args: object, clinicians: QuerySet[User], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["clinician"].queryset = clinicians  # type: ignore[attr-defined]
