from django import forms

from .models import TEXT_MAX, Report


class ReportForm(forms.Form):
    reason = forms.ChoiceField(choices=Report.Reason.choices, widget=forms.RadioSelect, label="What's wrong?")
    text = forms.CharField(
        label="Anything else we should know? (optional)",
        max_length=TEXT_MAX,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": TEXT_MAX}),
        help_text=f"Up to {TEXT_MAX} characters. Only moderators see this.",
    )


class FeedbackForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(1, 6)], coerce=int, label="How was the audio?"
    )
    comment = forms.CharField(
        label="Tell us more (optional)",
        max_length=TEXT_MAX,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": TEXT_MAX}),
    )
