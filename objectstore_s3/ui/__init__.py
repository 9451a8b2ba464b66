"""The web console (`objectstore-s3 ui`): a Starlette app over the public ObjectStore."""
