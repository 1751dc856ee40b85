"""CWL documents: what faice can do with a CommandLineTool without cwltool."""
