import datetime

from django import forms
from django.utils import timezone

from . import rules
from .avatars import process_avatar
from .models import TIME_ZONE_CHOICES
from .validators import validate_single_line


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        max_length=50,
        required=False,
        validators=[validate_single_line],
        help_text="Shown instead of your @handle.",
    )
    bio = forms.CharField(max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    time_zone = forms.ChoiceField(choices=TIME_ZONE_CHOICES, help_text="Times are shown in this zone.")
    date_of_birth = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Private: only used for age rules, such as selling tickets. Never shown.",
    )
    avatar = forms.FileField(
        required=False,
        help_text="JPEG, PNG or WebP, up to 5 MB. We crop it to a square.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    def clean_date_of_birth(self):
        born = self.cleaned_data.get("date_of_birth")
        if born is None:
            return None
        today = timezone.localdate()
        if born > today:
            raise forms.ValidationError("A date of birth can't be in the future.")
        if born < today - datetime.timedelta(days=365 * rules.OLDEST_AGE_YEARS):
            raise forms.ValidationError("Check the year of your date of birth.")
        return born

    def clean_avatar(self):
        upload = self.cleaned_data.get("avatar")
        if not upload:
            return None
        return process_avatar(upload)
