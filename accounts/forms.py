from django import forms

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
    avatar = forms.FileField(
        required=False,
        help_text="JPEG, PNG or WebP, up to 5 MB. We crop it to a square.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    def clean_avatar(self):
        upload = self.cleaned_data.get("avatar")
        if not upload:
            return None
        return process_avatar(upload)
