from django.apps import AppConfig


class LabConfig(AppConfig):
    name = "lab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.hooks import register_open_item_counter
        from lab.selectors import open_test_count

        register_open_item_counter(self.label, open_test_count)
