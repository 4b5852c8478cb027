/*! cookiebridge web-engagement | MIT */
// Web Engagement context for a media widget (the guide's proactive invitation → GMS chat widget hand-over).
// Invitation side: getIds() asks the Monitoring JS API (_gt) for visitID and pageID, openWidget() opens the media
// widget with them and the scenario in its URL. Widget side: readFromLocation() reads them back and attachedData()
// turns them into the attached data for the media server. Nothing here throws into the page or rejects.
(function (window) {
  'use strict';
  if (window.WebEngagementContext?.cookiebridge) return; // loaded twice: keep the first
  const DEFAULT_TIMEOUT = 2000;
  const DEFAULT_SCENARIO = 'CHAT-NOW';
  // The guide's URL parameter names, so a widget page adapted from its sample reads the same URL.
  const PARAMS = { visitID: 'visitId', pageID: 'pageId', scenario: 'gmsScenario' };
  const MAX_ID_LENGTH = 256;
  // Control characters (C0, DEL, C1), line/paragraph separators, U+FFFD (what a decoder makes of invalid UTF-8)
  // and unpaired surrogates never make it into attached data.
  const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/;
  const SCENARIO = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

  const warn = message => window.console?.warn?.('cookiebridge web-engagement: ' + message);

  // An id as carried: any printable text, exactly as given (no trimming), 1 to 256 characters; otherwise null.
  const validId = value => {
    if (typeof value === 'number' && isFinite(value)) value = String(value);
    if (typeof value !== 'string' || !value.length || value.length > MAX_ID_LENGTH) return null;
    if (FORBIDDEN.test(value) || !/\S/.test(value)) return null;
    return value;
  };

  const validScenario = value => typeof value === 'string' && SCENARIO.test(value) ? value : DEFAULT_SCENARIO;

  // { visitID, pageID } when both are valid (the Monitoring API spells them visitID/pageID, some pages visitId/pageId),
  // otherwise null.
  const idsFrom = raw => {
    if (!raw || typeof raw !== 'object') return null;
    const visitID = validId(raw.visitID !== undefined ? raw.visitID : raw.visitId);
    const pageID = validId(raw.pageID !== undefined ? raw.pageID : raw.pageId);
    return visitID && pageID ? { visitID, pageID } : null;
  };

  // Resolves { visitID, pageID } from _gt.push(['getIDs', callback]), or null after timeoutMs (default 2000) when
  // the Monitoring agent is absent, silent or answers nonsense. Before the agent has loaded, _gt is its command
  // queue (an array it drains once loaded), so an absent _gt becomes that queue.
  const getIds = timeoutMs => {
    const timeout = timeoutMs > 0 ? +timeoutMs : DEFAULT_TIMEOUT;
    return new Promise(resolve => {
      let settled = false;
      const settle = value => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => settle(null), timeout);
      try {
        window._gt ??= [];
        if (typeof window._gt.push !== 'function') return settle(null);
        window._gt.push(['getIDs', ids => settle(idsFrom(ids))]);
      } catch (error) {
        warn('_gt.push failed: ' + error);
        settle(null);
      }
    });
  };

  // The media widget's URL with the ids (when valid) and the scenario in its query, other parameters kept; null
  // when base is not a URL.
  const buildWidgetUrl = (base, ids, scenario) => {
    let url;
    try {
      url = new URL(base, window.location.href);
    } catch {
      warn('the widget URL ' + JSON.stringify(String(base)) + ' is not a URL');
      return null;
    }
    const valid = idsFrom(ids), params = url.searchParams;
    params.delete(PARAMS.visitID);
    params.delete(PARAMS.pageID);
    if (valid) {
      params.set(PARAMS.visitID, valid.visitID);
      params.set(PARAMS.pageID, valid.pageID);
    }
    params.set(PARAMS.scenario, validScenario(scenario));
    return url.href;
  };

  /**
   * openWidget(base, options) → Promise of { url, ids, window | frame, blocked }.
   * options: { scenario ('CHAT-NOW'), timeout (ms for getIds), frame: an <iframe> to load the widget in (otherwise a
   * pop-up), name, features: for window.open }. Call it from the click that accepts the invitation: the pop-up
   * opens at once (browsers block pop-ups opened later) and is sent to the widget URL once the ids are known.
   */
  const openWidget = (base, options) => {
    const settings = options || {}, frame = settings.frame;
    let popup = null;
    if (!frame) {
      try {
        const features = settings.features || 'width=420,height=640';
        popup = window.open('about:blank', settings.name || 'media-widget', features);
        if (popup) popup.opener = null; // the widget page gets no handle on the page that opened it
      } catch {
        popup = null;
      }
    }
    return getIds(settings.timeout).then(ids => {
      const result = { url: buildWidgetUrl(base, ids, settings.scenario), ids, blocked: false };
      try {
        if (!result.url) {
          popup?.close();
        } else if (frame) {
          frame.src = result.url;
          result.frame = frame;
        } else if (popup && !popup.closed) {
          popup.location.replace(result.url);
          result.window = popup;
        } else {
          result.blocked = true;
          warn('no pop-up (blocked or closed); open the widget from the click that accepts the invitation');
        }
      } catch (error) {
        warn('could not load the widget: ' + error);
      }
      return result;
    });
  };

  // Widget side: { visitID, pageID, scenario, engaged } from a query string (default: this page's). Missing or
  // invalid ids are null (engaged is false: no Web Engagement context); the scenario defaults to 'CHAT-NOW'.
  const readFromLocation = search => {
    let params;
    try {
      params = new URLSearchParams(typeof search === 'string' ? search : window.location.search);
    } catch {
      params = new URLSearchParams('');
    }
    const ids = idsFrom({ visitID: params.get(PARAMS.visitID), pageID: params.get(PARAMS.pageID) });
    return {
      visitID: ids ? ids.visitID : null,
      pageID: ids ? ids.pageID : null,
      scenario: validScenario(params.get(PARAMS.scenario)),
      engaged: !!ids,
    };
  };

  // The attached data for the media server: visitID, pageID and the webengagement key (any string marks the
  // interaction as proactively created; '' by default). Without valid ids: {} (not a Web Engagement interaction).
  const attachedData = (context, marker) => {
    const ids = idsFrom(context);
    if (!ids) return {};
    return { visitID: ids.visitID, pageID: ids.pageID, webengagement: typeof marker === 'string' ? marker : '' };
  };

  window.WebEngagementContext = {
    cookiebridge: 1,
    DEFAULT_SCENARIO,
    PARAMS,
    getIds,
    buildWidgetUrl,
    openWidget,
    readFromLocation,
    attachedData,
  };
})(window);
