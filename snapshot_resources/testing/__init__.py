"""Test kit for this project and for users' own programs: an emulator fixture, an S3 server
fixture, and ``ProviderHost``, which hosts a dynamic provider exactly as the Pulumi engine does."""
