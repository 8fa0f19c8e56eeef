from django import forms

from accounts.validators import validate_single_line

from .models import TITLE_MAX, TOPIC_MAX_CHARS, TOPICS_MAX, Space


class TopicsField(forms.CharField):
    """Comma-separated topics, up to three, each short."""

    def to_python(self, value):
        value = super().to_python(value) or ""
        topics = [t.strip() for t in value.split(",") if t.strip()]
        seen: list[str] = []
        for topic in topics:
            if topic.lower() not in (s.lower() for s in seen):
                seen.append(topic)
        return seen

    def validate(self, value):
        if len(value) > TOPICS_MAX:
            raise forms.ValidationError(f"Choose at most {TOPICS_MAX} topics.")
        for topic in value:
            if len(topic) > TOPIC_MAX_CHARS:
                raise forms.ValidationError(
                    f"“{topic[:30]}” is too long: topics are up to {TOPIC_MAX_CHARS} characters."
                )
            validate_single_line(topic)


class SpaceForm(forms.Form):
    title = forms.CharField(
        max_length=TITLE_MAX,
        validators=[validate_single_line],
        help_text=f"What's this Space about? Up to {TITLE_MAX} characters.",
        widget=forms.TextInput(attrs={"placeholder": "What do you want to talk about?", "autofocus": True}),
    )
    topics = TopicsField(
        required=False,
        help_text=f"Up to {TOPICS_MAX} topics, separated by commas.",
        widget=forms.TextInput(attrs={"placeholder": "music, open source"}),
    )
    speak_policy = forms.ChoiceField(
        label="Who can speak", choices=Space.SpeakPolicy.choices, initial=Space.SpeakPolicy.EVERYONE
    )
    captions_enabled = forms.BooleanField(
        label="Turn on live captions", required=False, help_text="Listeners can hide them any time."
    )
    signed_in_only = forms.BooleanField(
        label="Only signed-in listeners",
        required=False,
        help_text="Off: anyone with the link can listen without an account (they can't react or speak).",
    )
