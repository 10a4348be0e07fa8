from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "widget"
    verbose_name = "Web chat widget"

    def ready(self):
        from corsheaders.signals import check_request_enabled

        from bothero.api.publishable import cors_allows_request

        check_request_enabled.connect(cors_allows_request, dispatch_uid="bothero-publishable-cors")
